"""WSGI entry point for any server: `gunicorn glancelite.wsgi:application`.

The configuration file comes from $GLANCELITE_CONFIG, else conf/glancelite.conf.
"""
from glancelite.app import create_app
from glancelite.config import default_config_path, load_config

application = create_app(load_config(default_config_path()))
