"""The rules a job's Beam graph follows so that every runner, Dask included, runs it whole.

Beam's Dask translation (``apache_beam.runners.dask``) knows four transforms:
``Create``, ``ParDo``, ``GroupByKey`` and ``Flatten``; anything else (``Reshuffle``,
``Read``, combiners, Beam's file sinks) becomes a silent no-op. Within a
``ParDo`` it runs ``process`` over a partition and collects the outputs
*before* ``finish_bundle``, so what ``finish_bundle`` emits is lost (that is
how TFDS' writer fails there: its shard-count side input arrives empty). It
also computes only the last transform of the graph. Hence, for every job:

1. only ``Create``, ``ParDo`` (``Map``, ``FlatMap``), ``GroupByKey`` and
   ``Flatten``; composites only as labels and chains (``"Read" >> ...``,
   ``a | b``) or this project's own ``PTransform`` classes, which are
   checked part by part;
2. no side inputs (``beam.pvalue.AsList`` & co.);
3. no DoFn that overrides ``finish_bundle`` (nothing emitted from it);
4. no tagged outputs (``with_outputs``);
5. one sink at the end: every output but the last transform's is consumed.

`violations` checks a constructed pipeline; `pipelines.sink` refuses to run
a graph that breaks a rule, on any runner, so a job that passes its tests on
the DirectRunner does not lose data on Dask.
"""

from __future__ import annotations

from typing import Any

ALLOWED = ("Create", "ParDo", "GroupByKey", "Flatten")
# Modules whose PTransform subclasses are checked part by part.
_OWN_PREFIXES = ("pipelines.",)


class UnsafeGraphError(ValueError):
    """A job's Beam graph breaks a rule that Beam's Dask runner depends on."""


def _allowed_classes() -> dict[type, str]:
    import apache_beam as beam

    return {beam.Create: "Create", beam.ParDo: "ParDo", beam.GroupByKey: "GroupByKey",
            beam.Flatten: "Flatten"}


def _transparent(transform: Any) -> bool:
    """A composite that only names or chains others (its parts are checked instead)."""
    from apache_beam.transforms import ptransform

    if isinstance(transform, (ptransform._ChainedPTransform,  # noqa: SLF001
                              ptransform._NamedPTransform)):  # noqa: SLF001
        return True
    return type(transform).__module__.startswith(_OWN_PREFIXES)


def _pardo_problems(applied: Any, transform: Any = None) -> list[str]:
    import apache_beam as beam

    label = applied.full_label
    transform = transform or applied.transform
    found = []
    if list(applied.side_inputs) or list(getattr(transform, "side_inputs", []) or []):
        found.append(f"{label}: side input (pass what it needs when the graph is built)")
    if getattr(transform, "output_tags", None) or len(applied.outputs) > 1:
        found.append(f"{label}: tagged outputs (emit one kind of element per ParDo)")
    fn = getattr(transform, "fn", None)
    if fn is not None and type(fn).finish_bundle is not beam.DoFn.finish_bundle:
        found.append(f"{label}: {type(fn).__name__} overrides finish_bundle "
                     "(Dask drops what it emits)")
    return found


def _walk(applied: Any, allowed: dict[type, str], found: dict[str, list]) -> None:
    """Collect the checkable transforms under `applied` in graph order, and the problems."""
    from apache_beam.transforms.core import _MultiParDo  # ParDo(...).with_outputs(...)

    for part in applied.parts:
        found["consumed"].extend(id(pcoll) for pcoll in part.inputs)
        found["consumed"].extend(id(side.pvalue) for side in part.side_inputs)
        kind = allowed.get(type(part.transform))
        if kind is not None:
            found["leaves"].append(part)
            if kind == "ParDo":
                found["problems"].extend(_pardo_problems(part))
        elif isinstance(part.transform, _MultiParDo):
            found["problems"].append(f"{part.full_label}: tagged outputs (emit one kind of "
                                     "element per ParDo)")
            found["problems"].extend(p for p in _pardo_problems(part, part.transform._do_transform)
                                     if "tagged outputs" not in p)
            found["leaves"].append(part)
        elif part.parts and _transparent(part.transform):
            _walk(part, allowed, found)
        else:
            found["problems"].append(f"{part.full_label}: {type(part.transform).__name__} is "
                                     f"not one of {', '.join(ALLOWED)}")
            found["leaves"].append(part)


def violations(pipeline: Any) -> list[str]:
    """Every rule a constructed (not yet run) Beam pipeline breaks; empty when it is Dask-safe.

    Args:
      pipeline: an ``apache_beam.Pipeline`` with its transforms applied.

    Returns:
      One line per problem, naming the transform by its full label.
    """
    found: dict[str, list] = {"leaves": [], "problems": [], "consumed": []}
    _walk(pipeline.transforms_stack[0], _allowed_classes(), found)
    consumed = set(found["consumed"])
    problems = found["problems"]
    for leaf in found["leaves"][:-1]:
        if not any(id(pcoll) in consumed for pcoll in leaf.outputs.values()):
            problems.append(f"{leaf.full_label}: its output goes nowhere; a job has one "
                            "sink, at the end")
    return problems


def check(pipeline: Any) -> None:
    """Refuse a pipeline that breaks a rule.

    Raises:
      UnsafeGraphError: the first problems `violations` found.
    """
    problems = violations(pipeline)
    if problems:
        raise UnsafeGraphError("this job's Beam graph is not Dask-safe (see "
                               "pipelines/graph_rules.py): " + "; ".join(problems[:5]))
