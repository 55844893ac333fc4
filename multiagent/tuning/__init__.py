"""Ray Tune sweeps over training phases: sweep files, trials, PBT and Optuna, the verdict.

`config` and `space` and `folds` are Ray-free (sweep files load and validate without Ray);
`trainable`, `tuner` and `sweep` run the experiment.
"""
