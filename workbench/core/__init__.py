"""The ground floor: the error type, paths and cache locations, the model handle, layer introspection and
child-process isolation. Everything else in the workbench builds on these; they import nothing above them."""
