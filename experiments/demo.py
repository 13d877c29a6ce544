"""`make demo`'s last step: what the three commands before it found, in plain words.

Reads the results of

    tmf solve    experiments/resource-demo.yaml
    tmf simulate experiments/resource-demo.yaml
    tmf train    experiments/train-resource.yaml

through the Python API (docs/api.md) and prints one table: the question each command answers,
its answer, and how to read the number. Every number comes from the result files.
"""

from __future__ import annotations

import sys
import textwrap

import tmfcli as tmf


def interval(summary: object, metric: str) -> str:
    frame = summary.set_index("metric")  # type: ignore[attr-defined]
    mean, low, high = (float(frame.at[metric, k]) for k in ("mean", "ci_low", "ci_high"))
    return f"{mean:.3f} (95% interval {low:.3f} to {high:.3f})"


def value(summary: object, metric: str) -> float:
    return float(summary.set_index("metric").at[metric, "mean"])  # type: ignore[attr-defined]


def moving(manifest: dict[str, object]) -> str:
    return "all" if manifest.get("batch") == manifest.get("agents") else str(manifest["batch"])


def horizon(spec: dict[str, object]) -> str:
    given = spec.get("horizon")
    h = given if isinstance(given, dict) else {}
    if h.get("rounds") is not None:
        return f"{h['rounds']} rounds: each agent acts about {h['rounds']} times"
    return f"{h.get('steps')} steps"


def exact_note(manifest: dict[str, object]) -> str:
    note = "0 would be an equilibrium"
    exact = manifest.get("exploitability_exact")
    if isinstance(exact, float):
        note += (f"; learning with exact gradients instead of samples (tmf-pg-exact) reaches "
                 f"{exact:.3f}")
    return note


def main() -> None:
    try:
        solved = tmf.read("results/resource-demo/solve")
        simulated = tmf.read("results/resource-demo/simulate")
        trained = tmf.read("results/train-resource/train")
    except tmf.TmfError as error:
        sys.exit(f"Error: {error.message()} (run `make demo`)")
    sim, learned = simulated["summary"], trained["summary"]
    spec, tspec = solved.manifest["spec"], trained.manifest["spec"]
    n, b = spec["population"]["agents"], spec["population"]["batch"]
    rows = [
        ("1. tmf solve",
         "What should each agent do when all reason alike (the mean-field equilibrium)?",
         f"found in {solved.manifest['iterations']} iterations; an agent who deviates alone "
         f"gains {solved.manifest['exploitability']:.1e}",
         "this gain (the exploitability) is 0 at an equilibrium"),
        ("2. tmf simulate",
         f"Does it hold for {n} real agents, {b} of whom move at each step?",
         f"average reward per agent {interval(sim, 'return_avg')}; the mean-field model "
         f"predicts {value(sim, 'J'):.3f}",
         "the model should be close to the N-agent average: their gap shrinks like 1/sqrt(N)"),
        ("3. tmf train",
         f"Can {trained.manifest['agents']} agents ({moving(trained.manifest)} acting at each "
         f"step, {horizon(tspec)}) learn an equilibrium from experience alone "
         f"({tspec['train']['algorithm']}, {trained.manifest['iterations']} iterations)?",
         f"the learned policy leaves a deviation gain of "
         f"{trained.manifest['exploitability']:.3f}; reward per agent "
         f"{interval(learned, 'return_avg')}",
         exact_note(trained.manifest)),
    ]
    width = 100
    print(f"\ntmf demo: {spec['game']['name'].replace('_', ' ')}: agents choose among "
          "resources that pay less when crowded\n")
    for step, question, answer, reading in rows:
        print(step)
        for label, text in (("asks", question), ("finds", answer), ("read", reading)):
            print(textwrap.fill(text, width, initial_indent=f"   {label:<6}",
                                subsequent_indent=" " * 9))
    print("\nresults: " + ", ".join(str(r.directory) for r in (solved, simulated, trained)))
    print("the commands' own tables: results/demo.log; all runs: .venv/bin/tmf runs; "
          "what each number means: docs/model.md, docs/train.md")


if __name__ == "__main__":
    main()
