"""Subcommand bodies: each turns the composed config into one call into a layer."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from recorder import verify as log_verify
from smabm.registry import command
from smabm.registry import print_json as _print_json

console = Console(stderr=False)


def _info_table(info: dict) -> Table:
    t = Table(title=f"log {info['root']}: {info['events']:,} events in {info['segments']} segments, "
                    f"{info['bytes'] / 1e6:.2f} MB, {info['first']} → {info['last']}")
    for c in ("source", "stream", "events", "MB", "first", "last"):
        t.add_column(c, justify="right" if c in ("events", "MB") else "left")
    for s in info["streams"]:
        t.add_row(s["source"], s["stream"], f"{s['events']:,}", f"{s['bytes'] / 1e6:.2f}",
                  s["first"], s["last"])
    return t


@command("log info")
def log_info(cfg, args) -> int:
    info = log_verify.info(cfg.log.root)
    if args.json:
        _print_json(info)
    else:
        console.print(_info_table(info))
    return 0


def _print_verify(res: dict) -> None:
    console.print(f"verify: {res['events']:,} events in {res['segments']} segments, "
                  f"{len(res['problems'])} problems, {len(res['gaps'])} gaps -> "
                  + ("[green]OK[/green]" if res["ok"] else "[red]FAILED[/red]"))
    for p in res["problems"]:
        console.print(f"  problem {p['type']}: {p['path']}")
    for g in res["gaps"]:
        console.print("  gap " + " ".join(f"{k}={v}" for k, v in g.items() if v is not None))


@command("log verify")
def log_verify_cmd(cfg, args) -> int:
    res = log_verify.verify(cfg.log.root)
    if args.json:
        _print_json(res)
    else:
        _print_verify(res)
    return 0 if res["ok"] else 1


def _monitored_replay(cfg, progress: bool):
    """run_replay with the metrics sink / live chunk files when `monitor` asks for them."""
    from monitor.hooks import replay_monitor
    from replay.pipeline import run_dir_for, run_replay

    out_dir = run_dir_for(cfg)
    with replay_monitor(cfg, out_dir) as on_chunk:
        return run_replay(cfg, out=out_dir, progress=progress, on_chunk=on_chunk)


@command("replay")
def replay_cmd(cfg, args) -> int:
    from pathlib import Path

    from replay.pipeline import verify_run

    if args.verify:
        res = verify_run(Path(args.verify), progress=not args.json)
        if args.json:
            _print_json(res)
        else:
            for name, t in res["tables"].items():
                mark = "identical" if t["expected"] == t["got"] else "DIFFERENT"
                console.print(f"  {name}: {mark}")
            verdict = "[green]identical[/green]" if res["identical"] else "[red]differs[/red]"
            console.print(f"verify: {verdict}")
        return 0 if res["identical"] else 1
    out = _monitored_replay(cfg, progress=not args.json)
    if args.json:
        from replay.manifest import read_json

        _print_json({"run": str(out), **read_json(out / "manifest.json")["outputs"]})
    else:
        console.print(f"run written to {out}")
    return 0


@command("import")
def import_cmd(cfg, args) -> int:
    from recorder.importers import import_files

    report = import_files(cfg.log.root, args.format, args.files,
                          keep_going=bool(args.keep_going or cfg["import"].keep_going),
                          tz=cfg["import"].tz, market=cfg["import"].market, symbol=cfg["import"].symbol,
                          data_type=cfg["import"].data_type, progress=not args.json)
    if args.json:
        _print_json(report.to_dict())
    else:
        console.print(report.to_text(), markup=False)
    return 0


@command("log normalize")
def normalize_cmd(cfg, args) -> int:
    from recorder.normalize import normalize

    report = normalize(cfg.log.root, force=args.force, progress=not args.json)
    if args.json:
        _print_json(report.as_dict())
    else:
        d = report.as_dict()
        console.print(f"normalize: {d['segments']} segments, {d['rebuilt']} outputs rebuilt, "
                      f"{d['removed']} stale removed, rows {d['rows']}, {d['seconds']} s")
    return 0


@command("demo")
def demo_cmd(cfg, args) -> int:
    """The README's main job on the embedded default: bundled real samples -> log -> replay."""
    from recorder.importers import import_files
    from recorder.normalize import normalize
    from replay.manifest import read_json
    from smabm.config import load_config

    cfg = load_config([f"log.root={cfg.demo.root}", *cfg.demo.overrides, *args.overrides])
    root = cfg.log.root
    console.rule("1. import the bundled real samples into a local Parquet log")
    for item in cfg.demo.imports:
        report = import_files(root, item.format, list(item.files), tz=item.tz, progress=True)
        console.print(report.to_text(), markup=False)
    console.rule("2. the log")
    console.print(_info_table(log_verify.info(root)))
    res = log_verify.verify(root)
    _print_verify(res)
    console.rule("3. normalised tables (cached beside the log)")
    d = normalize(root, progress=True).as_dict()
    console.print(f"rows derived per table: {d['rows'] or 'all up to date'}")
    console.rule("4. replay: " + " -> ".join(cfg.replay.stages))
    out = _monitored_replay(cfg, progress=True)
    manifest = read_json(out / "manifest.json")
    for name, o in manifest["outputs"].items():
        console.print(f"  {name}: {o['rows']:,} rows, sha256 {o['sha256'][:16]}…")
    console.print(f"run directory: {out}  (re-check with: smabm replay --verify {out})")
    console.rule("5. stylized-fact validation report: real vs simulated")
    from calibrate.report import report_run

    html = report_run(out)
    console.print(f"report: {html}")
    return 0 if res["ok"] else 1


@command("check-book")
def check_book_cmd(cfg, args) -> int:
    from replay.check_book import check_book
    from replay.timeparse import time_ns

    w = cfg.replay.window
    window = (time_ns(w.start, "replay.window.start"), time_ns(w.end, "replay.window.end"))
    res = check_book(cfg.log.root, window=window if any(v is not None for v in window) else None)
    if args.json:
        _print_json({k: res[k] for k in ("compared", "match_pct", "crossed", "gaps")} | res)
    else:
        pct = "n/a" if res["match_pct"] is None else f"{res['match_pct']:.4f}%"
        console.print(f"check-book: {res['compared']:,} bookTicker updates compared, match {pct}, "
                      f"crossed {res['crossed']}, gaps {res['gaps']}")
        for note in res.get("notes", []):
            console.print(f"  note: {note}", markup=False)
    return 0 if res["match_pct"] in (None, 100.0) else 1


@command("sentiment score")
def sentiment_score_cmd(cfg, args) -> int:
    from models.sentiment import score_file

    s = cfg.models.sentiment
    out = args.out or f"{args.file}.scores.parquet"
    summary = score_file(args.file, out, model=str(s.model), text_column=args.column,
                         label_column=args.label_column, T=int(s.T), seed=int(cfg.seed),
                         sampled_layers=int(s.sampled_layers), max_length=int(s.max_length),
                         cache_path=s.cache, batch_size=int(s.batch_size))
    if args.json:
        _print_json(summary)
    else:
        console.print(f"scored {summary.get('count')} texts -> {out}")
        console.print(summary)
    return 0


@command("train-sentiment")
def train_sentiment_cmd(cfg, args) -> int:
    from models.sentiment import train_sentiment

    info = train_sentiment(args.train_csv, args.valid_csv, args.out, seed=int(cfg.seed))
    _print_json(info)
    return 0


@command("report")
def report_cmd(cfg, args) -> int:
    from calibrate.report import report_prices, report_run

    if bool(args.prices) == bool(args.run_dir):
        raise ValueError("report: give a RUN_DIR or --prices FILE (one of them)")
    if args.prices:
        html = report_prices(args.prices, time_col=args.time_col, price_col=args.price_col, out=args.out)
    else:
        html = report_run(args.run_dir, out=args.out)
    console.print(f"report: {html} (and {html.with_suffix('.json').name}, {html.with_suffix('.md').name})")
    return 0


@command("record")
def record_cmd(cfg, args) -> int:
    from monitor.hooks import recorder_monitor
    from recorder.daemon import run_daemon

    with recorder_monitor(cfg):
        return run_daemon(cfg)


@command("archive")
def archive_cmd(cfg, args) -> int:
    from recorder.kafka.archiver import run_archiver_cfg

    run_archiver_cfg(cfg)
    return 0


@command("calibrate")
def calibrate_cmd(cfg, args) -> int:
    from calibrate.optuna_study import run_calibration

    out = run_calibration(cfg)
    console.print(f"calibration: {out}; replay the winner with "
                  f"smabm replay --overrides-file {out / 'best_sim.yaml'}")
    return 0


@command("dashboard")
def dashboard_cmd(cfg, args) -> int:
    from monitor.app import run_dashboard

    return run_dashboard(cfg)
