"""The configuration loader: defaults, types, and messages that name file and option."""
import pytest

from glancelite.config import ConfigError, default_config_path, load_config


def write(tmp_path, text):
    path = tmp_path / "glancelite.conf"
    path.write_text(text)
    return str(path)


def test_defaults_follow_glance(tmp_path):
    conf = load_config(write(tmp_path, ""))
    assert conf["DEFAULT"]["bind_port"] == 9292
    assert conf["DEFAULT"]["limit_param_default"] == 25
    assert conf["DEFAULT"]["api_limit_max"] == 1000
    assert conf["DEFAULT"]["image_size_cap"] == 1099511627776
    assert conf["DEFAULT"]["hashing_algorithm"] == "sha512"
    assert conf["DEFAULT"]["show_image_direct_url"] is False
    assert "qcow2" in conf["image_format"]["disk_formats"]


def test_values_are_typed(tmp_path):
    conf = load_config(write(tmp_path, "[DEFAULT]\nworkers = 4\nshow_multiple_locations = True\n"
                                       "[image_format]\ncontainer_formats = bare\n"))
    assert conf["DEFAULT"]["workers"] == 4
    assert conf["DEFAULT"]["show_multiple_locations"] is True
    assert conf["image_format"]["container_formats"] == ["bare"]


@pytest.mark.parametrize("text, fragment", [
    ("[DEFAULT]\nbind_port = 70000\n", "[DEFAULT] bind_port: the value \"70000\" is too big"),
    ("[DEFAULT]\nworkers = many\n", "[DEFAULT] workers: the value \"many\" is of the wrong type"),
    ("[DEFAULT]\nshow_image_direct_url = perhaps\n", "[DEFAULT] show_image_direct_url"),
    ("[DEFAULT]\nauth_strategy = keystone\n", "[DEFAULT] auth_strategy"),
    ("[DEFAULT]\nhashing_algorithm = crc32\n", "[DEFAULT] hashing_algorithm"),
    ("[DEFAULT]\nlimit_param_default = 2000\n", "limit_param_default must not exceed api_limit_max"),
    ("[DEFAULT\nbroken", "malformed configuration file"),
])
def test_invalid_values_name_the_file_and_option(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert path in str(raised.value)
    assert fragment in str(raised.value)


def test_missing_file_is_reported(tmp_path):
    missing = str(tmp_path / "nope.conf")
    with pytest.raises(ConfigError, match="nope.conf: cannot read configuration file"):
        load_config(missing)


def test_unknown_options_are_warned_about_not_fatal(tmp_path, caplog):
    conf = load_config(write(tmp_path, "[DEFAULT]\nenable_v1_api = False\n"))
    assert conf["DEFAULT"]["bind_port"] == 9292
    assert "unknown option [DEFAULT] enable_v1_api ignored" in caplog.text


def test_config_path_comes_from_environment(monkeypatch):
    monkeypatch.setenv("GLANCELITE_CONFIG", "/etc/glancelite/api.conf")
    assert default_config_path() == "/etc/glancelite/api.conf"
    monkeypatch.delenv("GLANCELITE_CONFIG")
    assert default_config_path() == "conf/glancelite.conf"
