//! berth's engine: container records, the per-container monitor, run/exec/logs/top/stats, volumes
