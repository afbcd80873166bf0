"""The decoy an unknown sign-in name is checked against."""

from __future__ import annotations

import subprocess
import sys

from app.console import passwords


def test_the_decoy_costs_what_a_real_hash_costs_and_matches_nothing() -> None:
    """Same scheme and scrypt parameters as a hash `keycourier ops-user` makes (so checking
    it derives a key the same way), a salt and key of the same sizes, and no password
    matches it."""
    real = passwords.hash_password("correct horse").split("$")
    decoy = passwords._DECOY.split("$")
    assert decoy[:4] == real[:4] == [passwords.SCHEME, str(passwords.N), "8", "1"]
    assert [len(part) for part in decoy[4:]] == [len(part) for part in real[4:]]
    assert decoy[4:] != real[4:]
    assert not passwords.verify_password("", passwords._DECOY)
    assert not passwords.verify_password("correct horse", passwords._DECOY)


def test_loading_the_passwords_module_does_not_run_scrypt() -> None:
    """scrypt at these parameters allocates 32 MB: the web process's peak memory (under 120
    MB) has no room for one at import. Loading the module (alone, after what it imports)
    raises the process's peak by far less."""
    probe = (
        "import importlib.util, sys, app.errors\n"
        "def peak():\n"
        "    status = open('/proc/self/status').read().splitlines()\n"
        "    return [int(l.split()[1]) for l in status if l.startswith('VmHWM:')][0]\n"
        "before = peak()\n"
        "path = app.errors.__file__.replace('errors.py', 'console/passwords.py')\n"
        "spec = importlib.util.spec_from_file_location('decoy_probe', path)\n"
        "sys.modules['decoy_probe'] = module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert 'app.console' not in sys.modules\n"
        "print((peak() - before) // 1024)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert int(result.stdout) < 8
