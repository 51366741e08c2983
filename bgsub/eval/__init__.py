"""The evaluation wing: scoring masks against ground truth (``bgsub eval``).

* :mod:`~bgsub.eval.cdnet`: CDnet sequences and their metrics;
* :mod:`~bgsub.eval.synthetic`: synthetic scenes whose ground truth is known (the bundled
  sample, test footage, MJPEG test servers).
"""
