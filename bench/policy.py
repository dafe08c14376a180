#!/usr/bin/env python3
"""Policy check latency: glancelite.policy next to oslo.policy, same rules, same run.

    .venv/bin/python bench/policy.py [--calls N] [--runs R]

Rules: the seed's policies/policy.json (as shipped) plus three richer rules added to a copy:

  get_image         ""                      (seed; most of the seed's rules)
  publicize_image   role:admin              (seed)
  undefined_name    absent -> rule default  (seed's default is "")
  owner_or_admin    rule:context_is_admin or project_id:%(owner)s
  creator_unbanned  (role:Creator or is_admin:True) and not role:banned
  add_image_modern  Glance's current add_image default: rule:context_is_admin or
                    (role:member and project_id:%(project_id)s and project_id:%(owner)s)

glancelite: load_policy_file() then Policy.enforce(). oslo.policy, configured as Glance
would be: a called ConfigOpts, Enforcer(conf, policy_file=<the copy>), load_rules() at start,
enforce() with a creds dict; once with the default options (policy_dirs = ['policy.d'],
looked up at every call) and once with policy_dirs = []. Creds: a member of project p1
(a dict, as oslo.context's to_policy_values() gives); target: an image dict owned by p1.
Each figure is the best of --runs timings of --calls checks (oslo.policy: calls / 50),
in microseconds per check. Also prints both import times, measured in fresh interpreters.
Standard library only, plus oslo.policy when installed (without it, only glancelite runs).
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from glancelite.policy import load_policy_file  # noqa: E402

EXTRA_RULES = {
    "owner_or_admin": "rule:context_is_admin or project_id:%(owner)s",
    "creator_unbanned": "(role:Creator or is_admin:True) and not role:banned",
    "add_image_modern": "rule:context_is_admin or (role:member and project_id:%(project_id)s "
                        "and project_id:%(owner)s)",
}
CASES = ["get_image", "publicize_image", "undefined_name"] + list(EXTRA_RULES)
CREDS = {"roles": ["member", "creator"], "project_id": "p1", "user_id": "u1", "is_admin": False}
TARGET = {"id": "0b1c7a52-2f0e-4d5b-9a1e-8f6f3c2d4e10", "name": "cirros", "owner": "p1",
          "project_id": "p1", "visibility": "private", "status": "active", "protected": False,
          "os_distro": "cirros", "hw_disk_bus": "virtio"}


def per_call_us(enforce, name, calls, runs):
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(calls):
            enforce(name, TARGET, CREDS)
        best = min(best, time.perf_counter() - start)
    return best / calls * 1e6


def oslo_enforcers(path):
    """(label, enforce) pairs, or [] when oslo.policy is not installed."""
    try:
        from oslo_config import cfg
        from oslo_policy import policy as oslo_policy
    except ImportError:
        return []
    made = []
    for label, dirs in (("oslo default", None), ("oslo dirs=[]", [])):
        conf = cfg.ConfigOpts()
        conf([], project="glance", default_config_files=[], default_config_dirs=[])
        enforcer = oslo_policy.Enforcer(conf, policy_file=path)
        if dirs is not None:
            conf.set_override("policy_dirs", dirs, group="oslo_policy")
        enforcer.load_rules()
        made.append((label, lambda name, target, creds, e=enforcer: e.enforce(name, target, dict(creds))))
    return made


def import_ms(statement):
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    try:
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout
        return float(out) * 1e3
    except (subprocess.CalledProcessError, ValueError):
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    rules = json.loads((REPO / "policies" / "policy.json").read_text())
    rules.update(EXTRA_RULES)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "policy.json")
        Path(path).write_text(json.dumps(rules, indent=1))
        ours = load_policy_file(path)
        others = oslo_enforcers(path)

        for name in CASES:  # the same decisions first, or the timings mean nothing
            decisions = {label: enforce(name, TARGET, CREDS) for label, enforce in others}
            if any(bool(d) != ours.enforce(name, TARGET, CREDS) for d in decisions.values()):
                sys.exit(f"decisions differ for {name}: glancelite {ours.enforce(name, TARGET, CREDS)}, "
                         f"{decisions}")

        labels = ["glancelite"] + [label for label, _ in others]
        print(f"Python {sys.version.split()[0]}; µs per check, best of {args.runs}; "
              f"glancelite {args.calls} calls, oslo.policy {max(args.calls // 50, 100)} calls")
        header = f"{'rule':<18} {'allowed':>7}" + "".join(f" {label:>13}" for label in labels)
        if others:
            header += "".join(f" {'x ' + label.split()[1]:>11}" for label, _ in others)
        print(header)
        for name in CASES:
            oslo_calls = max(args.calls // 50, 100)
            row = [per_call_us(ours.enforce, name, args.calls, args.runs)]
            row += [per_call_us(enforce, name, oslo_calls, args.runs) for _, enforce in others]
            line = f"{name:<18} {str(ours.enforce(name, TARGET, CREDS)):>7}"
            line += "".join(f" {us:>13.2f}" for us in row)
            line += "".join(f" {us / row[0]:>10.0f}x" for us in row[1:])
            print(line)

    ours_ms = import_ms("import glancelite.policy")
    oslo_ms = import_ms("import oslo_config.cfg, oslo_policy.policy") if others else None
    print(f"\nimport: glancelite.policy {ours_ms:.0f} ms" if ours_ms is not None else "\nimport: ?", end="")
    print(f", oslo_config.cfg + oslo_policy.policy {oslo_ms:.0f} ms" if oslo_ms is not None else "")
    if not others:
        print("oslo.policy is not installed (pip install oslo.policy): glancelite only")


if __name__ == "__main__":
    main()
