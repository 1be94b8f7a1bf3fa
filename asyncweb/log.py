"""The framework's loggers, named after Tornado's (``tornado.*`` becomes ``asyncweb.*``).

``access_log`` gets one line per finished request, ``app_log`` errors from application code,
``gen_log`` everything else (protocol problems, bad client input).
"""

import logging

access_log = logging.getLogger("asyncweb.access")
app_log = logging.getLogger("asyncweb.application")
gen_log = logging.getLogger("asyncweb.general")
