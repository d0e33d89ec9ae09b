#!/usr/bin/env python3
"""The results of one test tier as one summary line, every skip with its reason, and the
strict check (scripts/run-tests.sh):

    === unit: 178 tests: 177 passed, 0 failed, 1 skipped
        skipped: WaitReasonsReal.Workloads119: test binary not available: ...

In strict mode (STRICT=1 in the environment; run-tests.sh sets it under CI=true) a skip
that no entry of the allow-list (tests/skip-allowlist.txt) matches is a failure.

Usage:
  testsummary.py gtest TIER RESULT.xml SUMMARY_OUT   gtest's --gtest_output=xml file
  (tests/run_e2e.py calls summarize() for the e2e tier)
Exit status: 0 when nothing failed and (strict) no skip is outside the allow-list.

gtest's XML is read rather than its JSON: the JSON of googletest 1.12 (Debian bookworm)
has no skip messages, the XML has them."""
import fnmatch
import os
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ALLOWLIST = os.path.join(HERE, "skip-allowlist.txt")


def strict_mode():
    return os.environ.get("STRICT", "") not in ("", "0")


def load_allowlist(path=ALLOWLIST):
    """[(tier, id_glob, reason)] from lines "TIER ID_GLOB REASON..."; '#' starts a comment.
    An entry without a reason is an error (raises ValueError)."""
    entries = []
    try:
        lines = open(path).read().splitlines()
    except FileNotFoundError:
        return entries
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise ValueError(f"{path}:{n}: an entry is 'TIER TEST_ID_GLOB REASON', with a reason: {line!r}")
        entries.append(tuple(parts))
    return entries


def allowed(tier, test_id, entries):
    for t, glob, reason in entries:
        if t == tier and fnmatch.fnmatchcase(test_id, glob):
            return reason
    return None


def summarize(tier, results, out=sys.stdout, summary_file=None, extra_failure=None):
    """results: [(test_id, status, reason)] with status passed|failed|skipped.
    Prints the summary line and the skips; returns True when the tier is green."""
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for _, status, _ in results:
        counts[status] += 1
    strict = strict_mode()
    try:
        entries = load_allowlist()
        allow_err = None
    except ValueError as e:
        entries, allow_err = [], str(e)
    lines = []
    bad = 0
    for test_id, status, reason in results:
        if status != "skipped":
            continue
        ok = allowed(tier, test_id, entries)
        if strict and ok is None:
            bad += 1
            lines.append(f"    skipped (NOT ALLOWED in strict mode): {test_id}: {reason}")
        else:
            lines.append(f"    skipped: {test_id}: {reason}" + (f" [allow-listed: {ok}]" if ok else ""))
    for test_id, status, reason in results:
        if status == "failed":
            lines.append(f"    FAILED: {test_id}" + (f": {reason}" if reason else ""))
    green = counts["failed"] == 0 and bad == 0 and not allow_err and not extra_failure
    head = (f"=== {tier}: {len(results)} tests: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped" + (" (strict)" if strict else "") + (": PASS" if green else ": FAIL"))
    if bad:
        lines.append(f"    strict mode: {bad} skip(s) not on tests/skip-allowlist.txt count as failures")
    if allow_err:
        lines.append(f"    {allow_err}")
    if extra_failure:
        lines.append(f"    {extra_failure}")
    text = "\n".join([head] + lines) + "\n"
    out.write(text)
    out.flush()
    if summary_file:
        with open(summary_file, "w") as f:
            f.write(text)
    return green


def message_line(message):
    """gtest's skip (or failure) message without the file:line and the trace."""
    keep = []
    for i, line in enumerate(message.splitlines()):
        if line.startswith("Google Test trace:"):
            break
        if i == 0 and ":" in line and line.split(":")[-1].isdigit():
            continue  # "path/file.cpp:123"
        if line.strip():
            keep.append(line.strip())
    return " ".join(keep) or "(no reason given)"


def gtest_results(xml_path):
    root = ET.parse(xml_path).getroot()
    results = []
    for case in root.iter("testcase"):
        test_id = f"{case.get('classname')}.{case.get('name')}"
        if case.get("status") == "notrun":  # DISABLED_
            results.append((test_id, "skipped", "disabled"))
            continue
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            results.append((test_id, "failed", message_line(bad.get("message") or bad.text or "")[:400]))
        elif case.get("result") == "skipped" or case.find("skipped") is not None:
            reasons = [message_line(s.get("message") or s.text or "") for s in case.findall("skipped")]
            results.append((test_id, "skipped", " | ".join(reasons) or "(no reason given)"))
        else:
            results.append((test_id, "passed", ""))
    return results


def main(argv):
    if len(argv) != 5 or argv[1] != "gtest":
        print(__doc__, file=sys.stderr)
        return 2
    _, _, tier, xml_path, summary_file = argv
    rc_note = os.environ.get("GTEST_EXIT", "0")
    try:
        results = gtest_results(xml_path)
    except (OSError, ET.ParseError) as e:
        summarize(tier, [], summary_file=summary_file,
                  extra_failure=f"no test results ({e}): the test binary crashed or did not start")
        return 1
    extra = None
    if rc_note != "0" and not any(s == "failed" for _, s, _ in results):
        extra = f"the test binary exited with status {rc_note}"
    return 0 if summarize(tier, results, summary_file=summary_file, extra_failure=extra) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
