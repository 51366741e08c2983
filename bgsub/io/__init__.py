"""The I/O wing: where frames come from and where results go.

* :mod:`~bgsub.io.sources`, :mod:`~bgsub.io.avsource`: cameras, files, streams, folders;
* :mod:`~bgsub.io.pipeline`: the frame loop (source -> frame step -> consumers);
* :mod:`~bgsub.io.sinks`: video, mask, statistics outputs written in a thread;
* :mod:`~bgsub.io.display`: the window and the annotation drawn on frames;
* :mod:`~bgsub.io.progress`, :mod:`~bgsub.io.priority`: progress reports, thread priority.

It imports the model wing and the bottom modules.
"""
