"""Configuration: the dataclasses, config.toml, files, overrides and the type check."""

import dataclasses
import json
import tomllib
from pathlib import Path

import pytest

from bgsub import MixtureMasker, Postprocessor
from bgsub.config import (Config, ConfigError, ModelConfig, PostprocessConfig, _check_types,
                          apply_overrides, as_mapping, load_config, replace_section,
                          resolve_config)

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_config_mirrors_the_dataclasses():
    """config.toml holds exactly the dataclasses' sections, fields and defaults."""
    data = tomllib.loads((ROOT / "config.toml").read_text())
    # TOML arrays are lists where the dataclasses keep tuples (hashable sections)
    assert data == json.loads(json.dumps(as_mapping(Config())))  # durations as written
    assert list(data) == [f.name for f in dataclasses.fields(Config)]  # same order too
    assert load_config(ROOT / "config.toml") == Config()


def test_every_setting_is_explained_in_config_toml():
    """Each key in config.toml has a comment block above it."""
    lines = (ROOT / "config.toml").read_text().splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            above = lines[i - 1] if i else ""
            assert above.startswith("#") or "=" in above and not above.startswith("#"), line


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nk = 3\nlearning_rate = = 2\n")
    with pytest.raises(ConfigError, match="line 3"):
        load_config(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[model]\nkk = 3\n")
    with pytest.raises(ConfigError, match="unknown key model.kk; valid keys in \\[model\\]: k,"):
        load_config(unknown)
    section = tmp_path / "section.toml"
    section.write_text("[modle]\nk = 3\n")
    with pytest.raises(ConfigError,
                       match="unknown section \\[modle\\]; valid sections: source, model, "):
        load_config(section)


def test_resolve_config_reads_the_current_folder_then_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config() == Config()  # no ./config.toml: the defaults
    (tmp_path / "config.toml").write_text("[model]\nk = 4\n")
    assert resolve_config().model.k == 4
    assert resolve_config(overrides=["model.k=5"]).model.k == 5
    other = tmp_path / "other.toml"
    other.write_text("[postprocess]\nmedian_size = 3\n")
    config = resolve_config(other, ["postprocess.open_size=5"])
    assert (config.model.k, config.postprocess.median_size, config.postprocess.open_size) == (
        ModelConfig().k, 3, 5)
    with pytest.raises(ConfigError, match="--width expects section.key=value"):
        resolve_config(None, ["nonsense"], "--width")


@pytest.mark.parametrize("make,needle", [
    (lambda: MixtureMasker(alpha=0.1), "unknown model parameter 'alpha'; valid: k, "),
    (lambda: Postprocessor(median=3), "unknown postprocess parameter 'median'; valid: "),
    (lambda: replace_section(PostprocessConfig(), size=3),
     "unknown postprocess parameter 'size'; valid: median_size"),
])
def test_unknown_parameters_raise_the_same_error_for_every_section(make, needle):
    with pytest.raises(ConfigError, match=needle):
        make()


@dataclasses.dataclass(frozen=True)
class Annotated:
    """A section with the annotations sections to come will use."""

    path: Path | None = None
    sizes: tuple[int, ...] = ()
    pair: tuple[float, float] = (0.0, 1.0)
    name: str | None = None
    rate: float = 1.0

    def __post_init__(self):
        _check_types(self, "test")


def test_the_type_check_accepts_any_annotation():
    a = Annotated(path="clips/a.mp4", sizes=[1, 2], pair=[1, 2.5], rate=3)
    assert a.path == Path("clips/a.mp4") and a.sizes == (1, 2) and a.pair == (1.0, 2.5)
    assert isinstance(a.rate, float) and hash(a)  # lists became tuples: still hashable
    assert Annotated(path=None, name=None).path is None
    for kwargs, needle in [({"path": 3}, "test.path must be Path or None, got int 3"),
                           ({"sizes": [1, "2"]}, "test.sizes[1] must be int, got str '2'"),
                           ({"sizes": "12"}, "test.sizes must be a list of int"),
                           ({"pair": [1.0]}, "test.pair must be a list of float, got 1 values"),
                           ({"rate": True}, "test.rate must be float, got bool True"),
                           ({"name": 5}, "test.name must be str or None")]:
        with pytest.raises(ConfigError) as err:
            Annotated(**kwargs)
        assert needle in str(err.value)


def test_overrides_read_toml_values_and_bare_strings():
    config = apply_overrides(Config(), ["model.rho=gaussian", "model.k=4",
                                        "postprocess.fill_holes=false"])
    assert (config.model.rho, config.model.k, config.postprocess.fill_holes) == (
        "gaussian", 4, False)


def test_scan_durations_are_read_once_into_duration_values(tmp_path):
    """Every written form becomes a Duration at load; files and --set take the same text."""
    import pickle

    from bgsub.timecode import Duration

    path = tmp_path / "c.toml"
    path.write_text('[scan]\npre_roll = 00:00:01.5\npost_roll = 45\nmin_event_length = "3"\n'
                    'flicker_window = "2s"\nchunk_warmup = "00:01:00"\n')
    scan = load_config(path).scan
    assert (scan.pre_roll, scan.post_roll, scan.min_event_length, scan.flicker_window,
            scan.chunk_warmup) == (Duration(seconds=1.5), Duration(count=45), Duration(count=3),
                                   Duration(seconds=2.0), Duration(seconds=60.0))
    config = apply_overrides(Config(), ["scan.pre_roll=0", "scan.post_roll=2.5s",
                                        "scan.flicker_window=00:00:03"])
    assert config.scan.pre_roll == Duration(count=0)
    assert config.scan.post_roll == Duration(seconds=2.5)
    assert config.scan.flicker_window == Duration(seconds=3.0)
    assert replace_section(config.scan, pre_roll="1s").pre_roll == Duration(seconds=1.0)
    # an override keeps the other sections' durations as they were
    assert apply_overrides(config, ["model.k=4"]).scan == config.scan
    # written out (the events table's JSON, digests) as a setting is written, and back
    assert as_mapping(config.scan)["post_roll"] == "2.5s"
    assert as_mapping(config.scan)["pre_roll"] == 0
    from bgsub.config import config_from_mapping
    assert config_from_mapping(as_mapping(config)) == config
    assert pickle.loads(pickle.dumps(config)) == config  # as Dask ships it to workers
    with pytest.raises(ConfigError, match=r"scan.pre_roll must be frames \(45\).*got 1.5$"):
        apply_overrides(Config(), ["scan.pre_roll=1.5"])
    with pytest.raises(ConfigError, match="scan.flicker_window must be at least one frame"):
        apply_overrides(Config(), ["scan.flicker_window=0s"])
