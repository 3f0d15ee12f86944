"""rustle_runtime: the code that ships inside every artifact and applies its plan on a host.

Standard library only (plus the vendored Jinja2, imported lazily), Python 3.8 syntax. It never
imports ``rustle_deploy``. The protocol it speaks (plan.json, command line, event stream, exit
codes) is documented in docs/artifact.md.

Import direction inside the package: ``payload``, ``events``, ``facts`` <- ``templating`` <-
``context`` <- ``modules/*`` <- ``become`` <- ``executor`` <- ``cli``. ``become`` also runs on
its own in a child process as the task's become_user, importing the rest from its parent.
"""

__version__ = "0.1.0"
FORMAT = 1
PROTOCOL = 1
