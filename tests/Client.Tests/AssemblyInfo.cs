// Embedded clusters in one process share its address space (arena slots): run test classes one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
