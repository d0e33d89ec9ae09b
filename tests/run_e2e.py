#!/usr/bin/env python3
"""Runs the e2e tier: every tests/e2e/test_*.py (unittest), verbose as it goes, then one
summary line with passed / failed / skipped counts and the reason of every skip
(tests/testsummary.py; strict mode fails on skips outside tests/skip-allowlist.txt).

Usage: run_e2e.py [SUMMARY_OUT] [unittest name ...]
  names as for `python3 -m unittest` (e.g. test_go.Inspect), default: discover test_*.py.
A test counts once: failed when it or any of its subtests failed or errored, skipped when
it or any of its subtests skipped (the reason names the subtest), else passed. When
setUpClass / setUpModule skips or fails, every test of that class or module counts as
skipped / failed with that reason."""
import os
import re
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(HERE, "e2e")
sys.path.insert(0, HERE)
import testsummary  # noqa: E402


class Collecting(unittest.TextTestResult):
    """TextTestResult that also keeps one outcome per test id."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.outcomes = {}  # id -> [status, reasons]
        self.order = []

    def _entry(self, test):
        parent = getattr(test, "test_case", None)  # a _SubTest's test
        tid = (parent or test).id()
        m = HOLDER.match(tid)  # "setUpClass (mod.Class)": a class or module fixture
        if m:
            tid = f"{m.group(2)}.{m.group(1)}"
        if tid not in self.outcomes:
            self.outcomes[tid] = ["passed", []]
            self.order.append(tid)
        return self.outcomes[tid], (test if parent else None)

    def _mark(self, test, status, reason=None):
        e, sub = self._entry(test)
        rank = {"passed": 0, "skipped": 1, "failed": 2}
        if rank[status] > rank[e[0]]:
            e[0] = status
        if reason is not None:
            e[1].append(f"{sub._subDescription()}: {reason}" if sub is not None else reason)

    def startTest(self, test):
        self._entry(test)
        super().startTest(test)

    def addSkip(self, test, reason):
        self._mark(test, "skipped", reason)
        super().addSkip(test, reason)

    def addFailure(self, test, err):
        self._mark(test, "failed", why(err))
        super().addFailure(test, err)

    def addError(self, test, err):
        self._mark(test, "failed", why(err))
        super().addError(test, err)

    def addUnexpectedSuccess(self, test):
        self._mark(test, "failed")
        super().addUnexpectedSuccess(test)

    def addSubTest(self, test, subtest, err):
        if err is not None:
            self._mark(subtest, "failed", why(err))
        super().addSubTest(test, subtest, err)

    def results(self, all_ids):
        """One entry per test of the suite; a test that never ran because its class or
        module fixture skipped or failed takes that fixture's outcome."""
        out, used = [], set()
        for tid in all_ids:
            e = self.outcomes.get(tid)
            if e is None:
                for holder in (tid.rsplit(".", 1)[0] + ".setUpClass", tid.split(".", 1)[0] + ".setUpModule"):
                    if holder in self.outcomes:
                        e = self.outcomes[holder]
                        used.add(holder)
                        break
            if e is None:
                out.append((tid, "failed", ""))  # never reported: count it, as a failure
                continue
            reason = "; ".join(e[1]) or ("no result reported" if e[0] != "passed" else "")
            out.append((tid, e[0], reason))
        known = set(all_ids)
        for tid in self.order:  # fixtures of their own (tearDownClass errors, import errors)
            if tid not in known and tid not in used:
                out.append((tid, self.outcomes[tid][0], "; ".join(self.outcomes[tid][1])))
        return out


def why(err):
    """The exception of a failure in one line (its type and the start of its message), for
    the summary: a CI log that keeps only its tail still says what failed."""
    etype, value, _ = err
    text = " ".join(str(value).split())
    return f"{etype.__name__}: {text[:400]}" + ("..." if len(text) > 400 else "")


HOLDER = re.compile(r"^(setUpClass|tearDownClass|setUpModule|tearDownModule) \((.+)\)$")


def test_ids(suite):
    if isinstance(suite, unittest.TestSuite):
        return [i for t in suite for i in test_ids(t)]
    return [suite.id()]


def main(argv):
    summary = argv[1] if len(argv) > 1 else None
    names = argv[2:]
    sys.path.insert(0, E2E)
    loader = unittest.TestLoader()
    if names:
        suite = loader.loadTestsFromNames(names)
    else:
        suite = loader.discover(E2E, pattern="test_*.py", top_level_dir=E2E)
    ids = test_ids(suite)
    runner = unittest.TextTestRunner(resultclass=Collecting, verbosity=2)
    t0 = time.time()
    result = runner.run(suite)
    print(f"(e2e: {time.time() - t0:.0f}s)")
    return 0 if testsummary.summarize("e2e", result.results(ids), summary_file=summary) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
