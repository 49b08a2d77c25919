"""`smabm`: parse, compose the config, dispatch. No logic lives here (DESIGN.md)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from omegaconf import OmegaConf

from smabm.config import ConfigError, load_config
from smabm.registry import COMMANDS

log = logging.getLogger("smabm")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="smabm",
        description="Record, replay and simulate crypto microstructure with sentiment. "
                    "Every command takes Hydra overrides (key=value) composed from conf/; "
                    "`--cfg job` after any command prints the resolved config.")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    sub.add_parser("demo", help="import the bundled real sample into a local log and summarise it")
    imp = sub.add_parser("import", help="import existing recordings as raw events")
    imp.add_argument("format", help="hftbacktest | cryptofeed | tardis | binance-vision | reddit")
    imp.add_argument("files", nargs="+", help="files to import (overrides may follow)")
    imp.add_argument("--keep-going", action="store_true", help="skip bad lines and report them")
    imp.add_argument("--json", action="store_true", help="print one JSON object")
    lg = sub.add_parser("log", help="inspect and maintain the event log")
    lsub = lg.add_subparsers(dest="log_cmd", required=True, metavar="ACTION")
    for name, helptext in (("info", "streams, spans, counts, bytes"),
                           ("verify", "hashes, seq and Binance update-id continuity")):
        a = lsub.add_parser(name, help=helptext)
        a.add_argument("--json", action="store_true", help="print one JSON object")
    rp = sub.add_parser("replay", help="replay a window of the log through the configured stages")
    rp.add_argument("--verify", metavar="RUN_DIR", help="re-run RUN_DIR's config and compare output hashes")
    rp.add_argument("--json", action="store_true", help="print one JSON object")
    rp.add_argument("--overrides-file", metavar="YAML",
                    help="apply a calibration winner (best_sim.yaml) before the command line overrides")
    cb = sub.add_parser("check-book", help="rebuild the L2 book and compare it with every bookTicker")
    cb.add_argument("--json", action="store_true", help="print one JSON object")
    se = sub.add_parser("sentiment", help="sentiment model tools")
    ssub = se.add_subparsers(dest="sentiment_cmd", required=True, metavar="ACTION")
    sc = ssub.add_parser("score", help="score the texts of a file (lines, or a CSV/Parquet column)")
    sc.add_argument("file")
    sc.add_argument("--out", help="output .parquet or .csv (default: FILE.scores.parquet)")
    sc.add_argument("--column", default="text", help="text column of a CSV/Parquet file")
    sc.add_argument("--label-column", help="labels to evaluate against (accuracy, macro-F1, ECE)")
    sc.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    tr = sub.add_parser("train-sentiment", help="fine-tune the default MiniLM model (seeded)")
    tr.add_argument("train_csv")
    tr.add_argument("valid_csv")
    tr.add_argument("--out", default="models/sentiment/weights", help="weights directory to write")
    sub.add_parser("record", help="run the configured live recorders (record.*) until SIGTERM")
    sub.add_parser("archive", help="run the faust archiver: Kafka topics -> the Parquet log")
    sub.add_parser("dashboard", help="monitoring dashboard (recorder, replay runs, calibration) on 127.0.0.1")
    sub.add_parser("calibrate", help="Optuna calibration of the agents (method of simulated moments)")
    rep = sub.add_parser("report", help="stylized-fact validation report (HTML, JSON, Markdown)")
    rep.add_argument("run_dir", nargs="?", help="a replay run directory")
    rep.add_argument("--prices", metavar="FILE", help="report a real price file (CSV or Parquet) alone")
    rep.add_argument("--time-col", help="time column of the price file (detected if omitted)")
    rep.add_argument("--price-col", help="price column of the price file (detected if omitted)")
    rep.add_argument("--out", help="output folder or .html path")
    n = lsub.add_parser("normalize", help="derive typed tables (depth, trades, bbo, posts) from raw")
    n.add_argument("--force", action="store_true", help="rebuild every table")
    n.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def split_overrides(extra: Sequence[str]) -> tuple[list[str], list[str]]:
    """Hydra overrides are `key=value` tokens; anything else is a positional argument."""
    overrides = [t for t in extra if "=" in t and not t.startswith("-")]
    rest = [t for t in extra if t not in overrides]
    return overrides, rest


def _pop_cfg_flag(argv: list[str]) -> bool:
    """`--cfg job` may follow any subcommand (as with Hydra apps): print the config and exit."""
    for i, tok in enumerate(argv):
        if tok == "--cfg" and i + 1 < len(argv) and argv[i + 1] == "job":
            del argv[i:i + 2]
            return True
        if tok == "--cfg=job":
            del argv[i]
            return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    print_cfg = _pop_cfg_flag(argv)
    overrides, positional = split_overrides(argv)
    args = _parser().parse_args(positional)
    if getattr(args, "overrides_file", None):
        from calibrate.optuna_study import overrides_from_file

        overrides = [*overrides_from_file(args.overrides_file), *overrides]
    args.overrides = overrides
    try:
        cfg = load_config(overrides)
    except ConfigError as exc:
        print(f"smabm: {exc}", file=sys.stderr)
        return 2
    if print_cfg:
        sys.stdout.write(OmegaConf.to_yaml(cfg))
        return 0
    from smabm import commands  # noqa: F401  (registers the subcommands)

    sub_action = {"log": "log_cmd", "sentiment": "sentiment_cmd"}.get(args.cmd)
    key = f"{args.cmd} {getattr(args, sub_action)}" if sub_action else args.cmd
    try:
        return int(COMMANDS[key](cfg, args) or 0)
    except (ConfigError, ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"smabm {key}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
