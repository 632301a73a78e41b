"""Experiment pipelines as library modules: one per family, each a typed config and ``run``.

============  ==========================================  =====================================
module        config                                      entry point
============  ==========================================  =====================================
demo          `DemoConfig`                  ``run(cfg, out) -> dict of tables``
synthetic     `SweepConfig`            ``run(cfg) -> dict (table, counts)``
real          `RealConfig`                  ``run(cfg) -> DataFrame``
finetune      `FinetuneSweepConfig`     ``run(cfg) -> dict (rows, summary)``
features      `ExtractConfig`           ``run(cfg) -> {(subset, split): shape}``
============  ==========================================  =====================================

`preflight` checks, before any work, that a config's models (installed weights or
prebuilt features) and data files are there. Notebooks, scripts and tests call these; the command line (`w2s_theory.cli`) only
parses arguments, loads the config and calls ``run``. Submodules are imported on demand.
"""
