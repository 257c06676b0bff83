"""The network runner: the room above the QNPU and the CNPU.

The QNPU (:mod:`qnodeos_hw.qnpu`) and the CNPU (:mod:`qnodeos_hw.cnpu`) are peers that
share only the wire protocol (:mod:`qnodeos_hw.protocol`) and the time base
(:mod:`qnodeos_hw.timebase`); what builds a network of them lives here:

* :mod:`.network` -- every node of a network in one process (``--processes single``):
  :class:`~.network.SimulatedNetwork`, :func:`~.network.run_app_dir`,
  :func:`~.network.run_mains`, :func:`~.network.run_mains_in_processes`;
* :mod:`.session` -- what a node or link process is told when it is started (addresses,
  secrets, the node's build), as JSON;
* :mod:`.node_serve` / :mod:`.link_serve` -- ``qnodeos-hw node serve`` and
  ``qnodeos-hw link serve``: one node (QNPU + QDriver + instruments) or one simulated
  heralding station as its own OS process;
* :mod:`.per_node` -- ``--processes per-node``: start every link, node and CNPU as its
  own process, run the programs, stop what was started, merge the traces.
"""
