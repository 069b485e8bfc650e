"""Record linkage, privacy-preserving record linkage (PPRL) and the master patient index.

Public entry points (import from the submodules; this package imports nothing heavy):

* :func:`healthmesh.identity.standardise.standardise_record` - raw record -> compared fields
* :func:`healthmesh.identity.engine.linker.link` - plaintext linkage / deduplication
* :func:`healthmesh.identity.pprl.encode.encode_table` - node-side encoding (CLKs, tokens)
* :func:`healthmesh.identity.pprl.linker.link_encoded` - hub-side linkage on encodings
* :class:`healthmesh.identity.mpi.service.MasterPatientIndex` - the hub's patient index
* :func:`healthmesh.identity.mpi.api.make_router` - ``$match`` routes for FastAPI
"""
