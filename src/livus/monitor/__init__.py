"""livus.monitor — model registry (``registry``: versions, active version, rollback), model
performance from confirmed outcomes (``performance``: windowed sensitivity/specificity, alerts)
and input drift against the training data (``drift``). Pure functions and files; the service
wires them to its database (``livus.service.monitoring``)."""
