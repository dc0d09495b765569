"""`evolve report`: a real LMDB store with a synthetic run, the HTML written from it, and the page
rendered in headless Chromium (scripts run; the DOM after them is checked)."""

from __future__ import annotations

import random
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cognition.embeddings import reset_embedder
from cognition.records import Candidate, Evaluation, Event, Insight, LLMCall, Run
from cognition.store import CognitionStore
from orchestrator.config import Settings
from orchestrator.errors import EvoforgeError
from orchestrator.report import embed_json, failure_breakdown, lineage_layout, write_report

N_CANDS = 40
HOSTILE = ('</script><script>document.body.dataset.pwned="1"</script>'
           '<img src=x onerror="document.body.dataset.pwned=2"><!--')
PRIOR_TEXT = "Circles near the border should hug the walls."
PLOTS = ("plot-best", "plot-dist", "plot-status", "plot-cost", "plot-failures", "lineage")


def _cand(run: str, i: int, parent: str | None, *, code: str = "", **kw: Any) -> Candidate:
    return Candidate(id=f"cand-{i:04d}-{run}", run_id=run, task="circle_packing", iteration=i,
                     code=code or f"def f():\n    return {i}\n", parent_id=parent, **kw)


def build_run(store: CognitionStore, run_id: str, *, hostile: bool = False) -> Run:
    """A 40-candidate run: a branching lineage, ok/error/timeout/invalid/rejected outcomes,
    two stages of evaluation, priors and learned insights, priced LLM calls, events."""
    rng = random.Random(7)
    t0 = 1_700_000_000.0
    done: list[Candidate] = []
    best: Candidate | None = None
    with store.write() as w:
        for i in range(N_CANDS):
            parent = rng.choice(done[-6:]) if done else None
            kind = "ok" if i == 0 else rng.choice(["ok"] * 6 + ["error", "timeout", "invalid", "rejected"])
            code = HOSTILE if hostile and i == 3 else ""
            score = round(1.0 + 0.04 * i + rng.uniform(-0.2, 0.2), 4) if kind == "ok" else None
            c = _cand(run_id, i, parent.id if parent else None, code=code, score=score,
                      status=None if kind == "rejected" else kind,
                      state="rejected" if kind == "rejected" else "done",
                      origin="seed" if i == 0 else "model:gpt-test", created_at=t0 + 10 * i,
                      summary=HOSTILE if hostile and i == 3 else f"changed constant {i}",
                      diff=f"--- a\n+++ b\n@@ -1 +1 @@\n-    return {i - 1}\n+    return {i}\n",
                      stage_reached="full" if kind == "ok" else "quick")
            w.put_candidate(c)
            if kind != "rejected":
                stages = ["quick", "full"] if kind == "ok" else ["quick"]
                for s, stage in enumerate(stages):
                    w.put_evaluation(Evaluation(
                        id=f"eval-{i:04d}-{s}-{run_id}", candidate_id=c.id, run_id=run_id,
                        stage=stage, seed=s, status=kind, score=score,
                        metrics={"n": 26, "sum_radii": score, "radii": [0.1] * 30,
                                 "bad": float("nan")},
                        error="" if kind == "ok" else
                        f"Traceback (most recent call last):\n  File \"/tmp/x{i}/p.py\"\nValueError: {i} circles overlap",
                        runtime_s=1.5 + i % 3, backend="process", created_at=t0 + 10 * i + 5))
                done.append(c)
                if score is not None and (best is None or score > (best.score or 0)):
                    best = c
            w.put_llm_call(LLMCall(
                id=f"llm-{i:04d}-{run_id}", run_id=run_id, role="researcher", model="gpt-test",
                prompt=[{"role": "user", "content": f"- [prior, confidence 0.90] {PRIOR_TEXT}"}],
                response="ok", prompt_tokens=900, completion_tokens=300, cost_usd=0.004,
                seq=i, candidate_id=c.id, created_at=t0 + 10 * i + 1))
        assert best is not None
        run = Run(id=run_id, task="circle_packing", task_dir="/nonexistent/task",
                  config={"iterations": N_CANDS, "llm": "gpt-test", "sampler": "islands"},
                  status="finished", stop_reason="budget: iterations", created_at=t0,
                  updated_at=t0 + 10 * N_CANDS, iterations_done=N_CANDS - 1,
                  best_candidate_id=best.id, best_score=best.score, seed_score=done[0].score,
                  tokens_used=1200 * N_CANDS, cost_usd=0.004 * N_CANDS)
        w.put_run(run)
        w.put_event(Event(id=f"evt-0-{run_id}", run_id=run_id, kind="run_started", created_at=t0))
        w.put_event(Event(id=f"evt-1-{run_id}", run_id=run_id, kind="run_finished",
                          data={"reason": "budget"}, created_at=t0 + 400))
        if hostile:  # this run records what each proposal was given (the other one does not)
            w.put_event(Event(id=f"evt-2-{run_id}", run_id=run_id, kind="insights_retrieved",
                              data={"candidate_id": f"cand-0003-{run_id}",
                                    "insight_ids": [f"ins-prior-{run_id}", f"ins-0-{run_id}"]},
                              created_at=t0 + 31))
        w.put_insight(Insight(id=f"ins-prior-{run_id}", text=PRIOR_TEXT, task="circle_packing",
                              source="prior", confidence=0.9, created_at=t0 - 100), dedupe=False)
        for k in range(3):
            w.put_insight(Insight(
                id=f"ins-{k}-{run_id}", task="circle_packing", source="analyzer",
                text=f"Learned lesson {k}: " + (HOSTILE if hostile else "larger radii pay"),
                run_id=run_id, evidence=[done[k + 1].id], confidence=0.6,
                created_at=t0 + 100 + k), dedupe=False)
    return run


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVOFORGE_EMBEDDER", "lexical")
        reset_embedder()
        path = tmp_path_factory.mktemp("report") / "s.lmdb"
        store = CognitionStore.open(path)
        build_run(store, "run-aaa111")
        build_run(store, "run-bbb222", hostile=True)
        store.close()
        reset_embedder()
    return path


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed: run `make setup` (scripts/host-deps.sh installs "
                    "it) or `apt-get install chromium`; the report tests render the page in it")
    return exe


def render(page: Path, tmp: Path, *, fragment: str = "", screenshot: Path | None = None) -> str:
    """The DOM after the page's scripts ran (or a screenshot), from headless Chromium."""
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp / 'profile'}",
            "--virtual-time-budget=10000", "--window-size=1500,2400"]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    done = subprocess.run([*args, page.resolve().as_uri() + fragment], capture_output=True,
                          text=True, timeout=180)
    if done.returncode != 0:
        raise AssertionError(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


class Dom(HTMLParser):
    """Elements of a dumped DOM: (tag, attrs) in order, plus the text under the side panel."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.panel_text: list[str] = []
        self._depth_in_panel = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.elements.append((tag, a))
        if self._depth_in_panel or a.get("id") == "panel":
            self._depth_in_panel += 1

    def handle_endtag(self, tag: str) -> None:
        if self._depth_in_panel:
            self._depth_in_panel -= 1

    def handle_data(self, data: str) -> None:
        if self._depth_in_panel:
            self.panel_text.append(data)

    def body(self) -> dict[str, str | None]:
        return next(a for t, a in self.elements if t == "body")

    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.elements if a.get("id")}

    def nodes(self) -> list[str]:
        return [a["data-id"] or "" for t, a in self.elements
                if t == "circle" and "node" in (a.get("class") or "").split()]


def _settings(store_path: Path, tmp: Path) -> Settings:
    return Settings(store=store_path, run_dir=tmp / "runs")


def test_report_renders_plots_and_tree_without_script_errors(store_path: Path, tmp_path: Path) -> None:
    page = write_report(_settings(store_path, tmp_path), "run-aaa", None)
    assert page == tmp_path / "runs" / "run-aaa111" / "report.html"
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html and "<link" not in html  # self-contained: nothing fetched
    dom = Dom(render(page, tmp_path))
    body = dom.body()
    assert body.get("data-errors") is None, body.get("data-errors")
    assert body.get("data-ready") == "1"
    assert set(PLOTS) <= dom.ids()
    nodes = dom.nodes()
    assert len(nodes) == N_CANDS and len(set(nodes)) == N_CANDS
    assert sum(1 for t, a in dom.elements if t == "path" and "bestpath" in (a.get("class") or "")) == 1
    panel = "".join(dom.panel_text)
    with CognitionStore.open(store_path, readonly=True) as store:
        best = store.get_run("run-aaa111").best_candidate_id
    assert best in panel and "diff against parent" in panel  # the best is selected on load
    assert '"used":40' in html  # the prior was in all 40 researcher prompts


def test_clicked_candidate_fragment_opens_its_code(store_path: Path, tmp_path: Path) -> None:
    page = write_report(_settings(store_path, tmp_path), "run-aaa111", tmp_path / "r.html")
    dom = Dom(render(page, tmp_path, fragment="#cand-0005-run-aaa111"))
    panel = "".join(dom.panel_text)
    assert "cand-0005-run-aaa111" in panel
    assert "return 5" in panel and "evaluations" in panel


def test_hostile_candidate_text_does_not_inject(store_path: Path, tmp_path: Path) -> None:
    page = write_report(_settings(store_path, tmp_path), "run-bbb222", None)
    html = page.read_text()
    assert "</script><script>document" not in html
    assert html.count("<script") == 3  # the error hook, the data block, the report script
    dom = Dom(render(page, tmp_path, fragment="#cand-0003-run-bbb222"))
    body = dom.body()
    assert body.get("data-ready") == "1" and body.get("data-errors") is None
    assert body.get("data-pwned") is None
    assert not any(t == "img" for t, _ in dom.elements)
    panel = "".join(dom.panel_text)
    assert HOSTILE in panel  # shown as text, whole
    assert "insights the researcher was given" in panel and PRIOR_TEXT in panel
    assert '"used":1' in html and '"used":40' not in html  # recorded events win over prompts


def test_screenshot_is_drawn(store_path: Path, tmp_path: Path) -> None:
    page = write_report(_settings(store_path, tmp_path), "run-aaa111", tmp_path / "r.html")
    png = tmp_path / "shot.png"
    render(page, tmp_path, screenshot=png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a blank page is ~10 kB


def test_unknown_run_names_the_fix(store_path: Path, tmp_path: Path) -> None:
    with pytest.raises(EvoforgeError, match="evolve runs"):
        write_report(_settings(store_path, tmp_path), "run-zzz", None)
    with pytest.raises(EvoforgeError, match="no cognition store"):
        write_report(_settings(tmp_path / "missing.lmdb", tmp_path), None, None)


def test_embedded_json_cannot_close_the_script_block() -> None:
    text = embed_json({"code": "</script><!-- & <b>", "line": "\u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text


def _node(cid: str, it: int, parent: str | None) -> SimpleNamespace:
    return SimpleNamespace(id=cid, iteration=it, parent_id=parent)


def test_lineage_layout_keeps_main_line_and_separates_overlapping_branches() -> None:
    # a -> b -> c -> d (main line), a -> e (branch alive while the main line is), c -> f
    cands = [_node("a", 0, None), _node("b", 1, "a"), _node("c", 2, "b"), _node("e", 3, "a"),
             _node("d", 4, "c"), _node("f", 5, "c"), _node("orphan", 6, "gone")]
    lanes = lineage_layout(cands)
    assert {lanes[x].y for x in "abcd"} == {lanes["a"].y}
    assert lanes["e"].y != lanes["a"].y and lanes["f"].y != lanes["a"].y
    assert [lanes[x].x for x in "abcdef"] == [0, 1, 2, 4, 3, 5]
    assert "orphan" in lanes


def test_lineage_layout_handles_deep_and_wide_runs() -> None:
    deep = [_node("n0", 0, None)] + [_node(f"n{i}", i, f"n{i - 1}") for i in range(1, 5000)]
    assert {v.y for v in lineage_layout(deep).values()} == {0}  # no recursion limit, one lane
    wide = [_node("r", 0, None)] + [_node(f"k{i}", i, "r") for i in range(1, 300)]
    lanes = lineage_layout(wide)
    assert max(v.y for v in lanes.values()) <= 2  # later siblings reuse freed lanes
    cyc = [_node("x", 1, "y"), _node("y", 2, "x")]
    assert set(lineage_layout(cyc)) == {"x", "y"}


def test_failure_breakdown_groups_by_normalised_reason() -> None:
    cands = [SimpleNamespace(id=f"c{i}", state="done", status="error", stage_reached="quick",
                             summary="") for i in range(3)]
    cands.append(SimpleNamespace(id="r", state="rejected", status=None, stage_reached=None,
                                 summary="rejected before evaluation: near-duplicate of cand-018f3a2b1c-abcdef12"))
    evals = {f"c{i}": [SimpleNamespace(status="error", stage="quick", feedback="",
                                       error=f"Traceback\n  File \"/tmp/w{i}/p.py\", line {i}\nValueError: {i} overlap")]
             for i in range(3)}
    rows = failure_breakdown(cands, evals)
    assert rows[0] == {"kind": "error", "stage": "quick", "reason": "ValueError: N overlap",
                       "n": 3, "ids": ["c0", "c1", "c2"]}
    assert rows[1]["kind"] == "rejected" and "cand-…" in rows[1]["reason"]
