//! Handler tests: the router driven in process, over a store in a temporary directory.
