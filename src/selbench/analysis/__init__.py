"""Analysis: pure functions over a run's results tables -> statistics, verdicts and the study's views.

Modules (numpy / pandas / scipy only; no model code; I/O only in `tables.read_results` / `read_items`):

* `tables`: the column names of `results.parquet` / `items.parquet` (the runner imports them) and readers;
* `stats`: `compare_to_random` (calibrated for seed-to-seed variation), `compare_head_to_head`,
  `compare_items_only` (the naive test, for contrast), `holm`, `rank_correlation`;
* `views`: `vs_random`, `mean_adjusted_win_rates`, `budget_trends`, `overlap_table`;
* `correlations`: `benchmark_correlations`, `lora_vs_full_pairs`, `lora_vs_full_correlation`;
* `pareto`: `pareto_front`, `cost_performance`;
* `regret`: `budget_transfer_regret`;
* `verdict`: `verdict_table`;
* `overlap`: `pair_overlap`, `overlap_matrix`.
"""
