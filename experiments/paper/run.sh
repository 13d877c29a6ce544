#!/bin/sh
# The paper's claims reproduced on our games (docs/report.md), then `tmf report --claims`.
#   sh experiments/paper/run.sh full  results/paper        # make paper
#   sh experiments/paper/run.sh quick results/paper-quick  # make paper-quick
# A third argument runs only the listed claims (e.g. "2", "1 2"); TMF names the tmf to use.
# Results already up to date (same spec) are reused, so a rerun only redoes what changed.
set -eu
MODE=${1:-full}
OUT=${2:-results/paper}
CLAIMS=${3:-1 2 3}
TMF=${TMF:-.venv/bin/tmf}
HERE=$(dirname "$0")

if [ "$MODE" = quick ]; then
  ALPHAS_resource="1 0.3"; ALPHAS_queueing="1 0.1"
  SOLVE="--set solver.restarts=2"
  BOUND="--set bound_check.agents=[100,300,1000] --set bound_check.replicas=100"
  TRAIN_GAMES="resource"; SEEDS="0 1"; TRAIN="--set train.iterations=10"
else
  ALPHAS_resource="1 0.1 0.03"; ALPHAS_queueing="1 0.1 0.01"
  SOLVE=""; BOUND=""
  TRAIN_GAMES="resource queueing"; SEEDS="0 1 2"; TRAIN=""
fi

runs=""
has() { case " $CLAIMS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
step() { echo "paper ($MODE): $*" >&2; }

if has 1; then  # a unique equilibrium for any B: several alpha, random restarts
  for game in resource queueing; do
    eval "alphas=\$ALPHAS_$game"
    for a in $alphas; do
      dir="$OUT/unique-$game-alpha$a"
      step "solve $game alpha=$a"
      $TMF solve "$HERE/unique-$game.yaml" --set population.alpha="$a" $SOLVE --out "$dir" \
        >/dev/null
      runs="$runs $dir"
    done
  done
fi

if has 2; then  # the O(1/sqrt N) gap whatever B, in rounds and in steps
  for spec in gap-rounds-resource gap-steps-resource gap-rounds-queueing; do
    dir="$OUT/$spec"
    step "bound-check $spec"
    # exit 3 means a regime failed its verdict: the report says which, so go on
    $TMF bound-check "$HERE/$spec.yaml" $BOUND --out "$dir" >/dev/null || [ $? -eq 3 ]
    runs="$runs $dir"
  done
  dir="$OUT/bands-queueing"
  step "simulate bands-queueing"
  $TMF simulate "$HERE/bands-queueing.yaml" --out "$dir" >/dev/null
  runs="$runs $dir"
fi

if has 3; then  # TMF-PG for B = 1 and B = N, beside mf-q and independent-pg: needs tmf train
  if $TMF train --help >/dev/null 2>&1; then
    for game in $TRAIN_GAMES; do
      for algorithm in tmf-pg mf-q independent-pg; do
        for batch in 1 all; do
          for seed in $SEEDS; do
            dir="$OUT/train-$game-$algorithm-B$batch-seed$seed"
            step "train $game $algorithm B=$batch seed=$seed"
            $TMF train "$HERE/train-$game.yaml" --set train.algorithm="$algorithm" \
              --set population.batch="$batch" --set seed="$seed" $TRAIN --out "$dir" >/dev/null
            runs="$runs $dir"
          done
        done
      done
    done
  else
    step "claim 3 skipped: this tmf has no 'train' command (the report marks it not measurable)"
  fi
fi

step "report"
$TMF report $runs --claims --out "$OUT" \
  --title "The paper's claims on our games ($MODE)"
