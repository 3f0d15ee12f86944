"""rustle-deploy: compile rustle-plan execution plans into artifacts and apply them over SSH.

Pipeline (one module or package per stage; imports point only leftwards):

    errors <- model <- settings, plan, inventory <- compiler <- transport <- deploy <- state, report <- cli

``runtime/`` ships inside every artifact: it imports only the standard library (and the vendored
Jinja2 under ``runtime/_vendor``) and never imports ``rustle_deploy``. The compiler reads it as
package data without importing it.
"""

__version__ = "0.1.0"
