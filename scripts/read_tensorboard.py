"""Read a taper run's TensorBoard event file with TensorBoard's own reader.

    /tmp/peers-venv-cleanrl/bin/python scripts/read_tensorboard.py RUN_DIR

Prints every tag with its number of points and its first and last (step, value), using
tensorboard.backend.event_processing.event_accumulator.EventAccumulator.
"""
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    run = sys.argv[1]
    acc = EventAccumulator(run, size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    if not tags:
        sys.exit(f"no scalars found in {run}")
    print(f"{len(tags)} scalar tags in {run}")
    for tag in sorted(tags):
        ev = acc.Scalars(tag)
        print(f"{tag:32s} {len(ev):5d} points  first ({ev[0].step}, {ev[0].value:.6g})  last ({ev[-1].step}, {ev[-1].value:.6g})")


if __name__ == "__main__":
    main()
