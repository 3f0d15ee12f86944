"""rustle-deploy: compile rustle-plan execution plans into artifacts and apply them over SSH.

Pipeline (one module or package per stage; imports point only leftwards):

    errors <- model <- settings, plan, inventory, rollout <- compiler <- transport <- deploy <- state, report <- cli

``rollout`` (no I/O) cuts a plan into stages and batches and says when a rollout stops; the
modes that touch hosts (``fleetops``) run its schedule through the deploy fan-out.

``runtime/`` ships inside every artifact: it imports only the standard library (and the vendored
Jinja2 under ``runtime/_vendor``) and never imports ``rustle_deploy``. The compiler reads it as
package data without importing it.
"""

__version__ = "0.1.0"
