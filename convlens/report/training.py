"""The report's section "How the filters formed" (issue 23 §5), shown when the model was trained here
(``-S model=train``): the learning curves, the epoch where training stopped and why, the film of the filters (GIFs
that play in the page, offline: files beside it like every figure) and the kernel std per epoch against the book's
trained and untrained values.

It reads only ``render_film@trained``'s folder (``outputs/figures/film``, whose ``film.json`` carries what it needs
of ``history.json``), the one output of training the report depends on (``${model.film}`` in ``dvc.yaml``). With
any other model it is one sentence saying how to train here, under a title (in the contents too) saying that it
appears after training (``-S model=train``); a film left from an earlier run is not shown then.

``TrainingSections`` is mixed into ``report.Report`` (``root``, ``t``, ``params``, ``relative``, ``image``).
"""

from __future__ import annotations

from typing import Any

from convlens.pipeline import paths
from convlens.report.chapter import read_json_file
from convlens.report.pages import Note, Section, Table, Text, number

RUN = "trained"  # the training run whose film the report shows (model.train_runs' one entry)
STAGE = f"render_film@{RUN}"


class TrainingSections:
    """The training section (a mixin of ``report.Report``)."""

    def trained_here(self) -> bool:
        return RUN in (self.params.get("model", {}).get("train_runs") or [])

    def training(self) -> Section:
        t, folder = self.t, paths.film_dir(self.root)
        record_path = folder / paths.FILM_NAME
        if not self.trained_here():  # the book's or your model: its title and a sentence say how to train here
            section = Section("training", t("training_title_off", override="-S model=train"))
            section.blocks.append(Text(t("training_off", command="dvc exp run -S model=train")))
            return section
        section = Section("training", t("training_title"), t("training_intro"))
        if not record_path.is_file():
            what = self.relative(record_path)
            section.blocks.append(Note(t("not_run_yet", what=what, command="dvc repro", stage=STAGE)))
            return section
        record = read_json_file(record_path)
        section.blocks.append(Text(self.stopped(record)))
        section.blocks.append(
            self.figure([(folder / record["learning_curves"], t("training_curves"))], t("training_curves_caption"))
        )
        layers: dict[str, dict[str, Any]] = record["layers"]
        frames = record["epochs_run"] + 1
        gifs = [(folder / d["gif"], t("training_film_label", layer=layer)) for layer, d in layers.items()]
        scales = ", ".join(f"{layer} ±{number(d['scale'])}" for layer, d in layers.items())
        caption = t("training_film_caption", frames=frames, ms=record["frame_ms"], scales=scales)
        section.blocks.append(self.figure(gifs, caption, wide=True))
        for maps in record.get("maps") or []:
            label = t("training_maps_label", layer=maps["layer"], sample=maps["sample"])
            caption = t("training_maps_caption", layer=maps["layer"], sample=maps["sample"])
            section.blocks.append(self.figure([(folder / maps["gif"], label)], caption))
        strips = [(folder / d["strip"], t("training_strip_label", layer=layer)) for layer, d in layers.items()]
        section.blocks.append(self.figure(strips, t("training_strips_caption"), wide=True))
        section.blocks.append(
            self.figure([(folder / record["kernel_std_figure"], t("training_std"))], t("training_std_caption"))
        )
        section.blocks.append(self.std_table(record))
        return section

    def stopped(self, record: dict[str, Any]) -> str:
        """When training stopped and why, and which epoch's model was kept."""
        t, best = self.t, record["best_epoch"]
        seconds = record.get("seconds_per_epoch") or []
        key = "training_stopped_early" if record["stopped_early"] else "training_ran_all"
        return t(
            key,
            epochs_words=t.count("training_epochs", record["epochs_run"]),
            reason=record["reason"],
            best=best,
            val_accuracy=number(record["val_accuracy"][best - 1]),
            seconds=number(sum(seconds) / len(seconds)) if seconds else "–",
        )

    def std_table(self, record: dict[str, Any]) -> Table:
        """Each layer's kernel std at epoch 0, at the kept epoch and at the last, beside the book's values."""
        best, reference = record["best_epoch"], record.get("reference_std", {})
        rows = [
            [
                layer,
                number(values[0]),
                number(values[best]),
                number(values[-1]),
                number(reference.get(layer, {}).get("untrained")),
                number(reference.get(layer, {}).get("trained")),
            ]
            for layer, values in record["kernel_std"].items()
        ]
        return Table(self.t.columns("training_std_columns", best=best), rows, self.t("training_std_table"))
