"""A Docker Compose installation of Harbor: detect it, stop its stack, and serve its
database from the installation's own harbor-db image, alone, on 127.0.0.1."""
from .database import HarborDbContainer, remove_leftovers, serving
from .detect import ComposeInstallation, detect_compose
from .stack import refuse_running, stop_harbor

__all__ = ["ComposeInstallation", "HarborDbContainer", "detect_compose", "refuse_running", "remove_leftovers",
           "serving", "stop_harbor"]
