"""rustle-deploy: compile Ansible playbooks or rustle-plan execution plans into artifacts and
apply them over SSH.

Pipeline (one module or package per stage; imports point only leftwards):

    errors <- model <- settings, ansible_cfg, plan, inventory, rollout <- playbook <- compiler
        <- transport <- deploy <- state, report, listing <- cli

``rollout`` (no I/O) cuts a plan into stages and batches and says when a rollout stops; the
modes that touch hosts (``fleetops``) run its schedule through the deploy fan-out.
``reconcile`` (beside ``fleetops``, over ``deploy`` and ``state``) records what hosts did when
the controller could not hear it: an interrupt, a cut after the upload, a killed controller.

``playbook/`` is the front end for Ansible content: playbook + roles + inventory + extra vars
-> the same Plan model ``plan/`` reads from JSON (and ``plan.write`` writes back out).

``runtime/`` ships inside every artifact: it imports only the standard library (and the vendored
Jinja2 under ``runtime/_vendor``) and never imports ``rustle_deploy``. The compiler reads it as
package data without importing it.
"""

__version__ = "0.1.0"
