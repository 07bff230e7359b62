"""Range messages: each names the argument the user set and states its real bounds (the core's
rule for it), never the bounds of the integer type behind it."""

from __future__ import annotations

import pytest

import loadmon


@pytest.mark.parametrize("value", [-1, 0, 1_000_001, 2**200])
def test_expect_clients_states_its_real_range(value: int) -> None:
    with pytest.raises(loadmon.ConfigError) as info:
        loadmon.Server(port=0, expect_clients=value)
    message = str(info.value)
    assert f"expect_clients must be from 1 to 1000000, not {value}" in message
    assert "18446744073709551615" not in message


@pytest.mark.parametrize("value", [-1, 0, 1_000_001])
def test_max_clients_states_its_real_range(value: int) -> None:
    with pytest.raises(loadmon.ConfigError) as info:
        loadmon.Server(port=0, max_clients=value)
    assert f"max_clients must be from 1 to 1000000, not {value}" in str(info.value)


@pytest.mark.parametrize(
    ("argument", "value", "bounds"),
    [
        ("max_chunk_mb", -1, "from 1 to 4096"),
        ("max_chunk_mb", 0, "from 1 to 4096"),
        ("max_disk_mb", -1, "from 1 to 17592186044415"),
        ("max_disk_mb", 2**200, "from 1 to 17592186044415"),
    ],
)
def test_the_workers_limits_state_their_real_range(argument: str, value: int, bounds: str) -> None:
    with pytest.raises(loadmon.ConfigError) as info:
        loadmon.Worker(port=1, **{argument: value})
    message = str(info.value)
    assert f"{argument} must be {bounds}, not {value}" in message
    assert "18446744073709551615" not in message
