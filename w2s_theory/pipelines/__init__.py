"""Experiment pipelines as library modules: one per family, each a typed config and ``run``.

============  ==========================================  =====================================
module        config                                      entry point
============  ==========================================  =====================================
demo          :class:`~.demo.DemoConfig`                  ``run(cfg, out) -> dict of tables``
synthetic     :class:`~.synthetic.SweepConfig`            ``run(cfg) -> dict (table, counts)``
real          :class:`~.real.RealConfig`                  ``run(cfg) -> DataFrame``
finetune      :class:`~.finetune.FinetuneSweepConfig`     ``run(cfg) -> dict (rows, summary)``
features      :class:`~.features.ExtractConfig`           ``run(cfg) -> {(subset, split): shape}``
============  ==========================================  =====================================

:mod:`~.preflight` checks, before any work, that a config's models (installed weights or
prebuilt features) and data files are there. Notebooks, scripts and tests call these; the command line (:mod:`w2s_theory.cli`) only
parses arguments, loads the config and calls ``run``. Submodules are imported on demand.
"""
