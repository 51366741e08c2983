"""The live wing: what a camera or a stream run adds to the frame loop.

* :mod:`~bgsub.live.events`: motion events as they happen (``--events``, ``--clips``,
  ``--on-event``);
* :mod:`~bgsub.live.checkpointer`: saving the model every few minutes (``--save-model``).

It imports the scan wing (the event rules and scorer), the I/O and model wings.
"""
