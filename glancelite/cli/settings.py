"""Where the API is and which token to send: flags, then environment, then a config file.

The environment variables are glance's (OS_IMAGE_URL, OS_AUTH_TOKEN, OS_IMAGE_API_VERSION).
The config file is ours: `--config-file`, else $GLANCELITE_CLIENT_CONFIG, else
~/.config/glancelite/client.conf if it exists, with one section:

    [glancelite]
    image_url = http://127.0.0.1:9292
    auth_token = secret
    timeout = 600
"""
import configparser
import os
import re

from glancelite.cli.errors import CommandError

CONFIG_ENV = "GLANCELITE_CLIENT_CONFIG"
DEFAULT_CONFIG = "~/.config/glancelite/client.conf"
SECTION = "glancelite"
_VERSION_SUFFIX = re.compile(r"/v(\d+)(\.\d+)?/?$")


def read_config_file(path):
    """The [glancelite] options of the config file; {} when no file is configured or found."""
    explicit = path or os.environ.get(CONFIG_ENV)
    path = os.path.expanduser(explicit or DEFAULT_CONFIG)
    if not os.path.exists(path):
        if explicit:
            raise CommandError(f"{path}: config file not found")
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: cannot read config file: {exc}") from exc
    if not parser.has_section(SECTION):
        return {}
    return dict(parser.items(SECTION))


def endpoint_and_version(url):
    """Strip a trailing /vN from the image URL, as glance does; returns (base, major)."""
    url = url.rstrip("/")
    match = _VERSION_SUFFIX.search(url)
    if match is None:
        return url, None
    return url[:match.start()], int(match.group(1))


def resolve(args):
    """(endpoint, token, timeout) from the flags, the environment and the config file."""
    conf = read_config_file(args.config_file)
    url = args.os_image_url or os.environ.get("OS_IMAGE_URL") or conf.get("image_url")
    token = args.os_auth_token or os.environ.get("OS_AUTH_TOKEN") or conf.get("auth_token")
    if not url:
        raise CommandError("You must provide an image URL via either --os-image-url or "
                           "env[OS_IMAGE_URL] (or image_url in the [glancelite] section of the "
                           "config file)")
    endpoint, url_version = endpoint_and_version(url)
    wanted = args.os_image_api_version or os.environ.get("OS_IMAGE_API_VERSION") or url_version
    if wanted is not None and str(wanted).split(".")[0] != "2":
        raise CommandError(f"glancelite speaks the v2 image API only, not version {wanted}")
    timeout = args.timeout
    if timeout is None:
        try:
            timeout = float(conf.get("timeout", 600))
        except ValueError:
            raise CommandError(f"timeout in the config file is not a number: "
                               f"{conf['timeout']!r}") from None
    return endpoint, token, timeout
