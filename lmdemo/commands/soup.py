"""`lmdemo soup`: average finished LoRA runs into one new run (a uniform model soup), which is then
a model like any run (`run:NAME`), scored on the shipped validation split when the runs used it."""

from __future__ import annotations

from lmdemo.cli import add_json_flag


def register(sub) -> None:
    p = sub.add_parser("soup", help="average finished LoRA runs into a new run (model soup)")
    p.add_argument("runs", nargs="+", help="names of two or more finished LoRA runs")
    p.add_argument("--name", required=True, help="name of the new run")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args):
    from lmdemo.training import jobs
    from lmdemo.training.soup import soup_run

    folder = soup_run(args.runs, args.name)
    info = jobs.get_run(folder.name)
    return {"run": folder.name, "model": f"run:{folder.name}", "soup_of": info.config["soup_of"],
            "val_accuracy": info.status.get("best_val_accuracy"), "folder": str(folder)}
