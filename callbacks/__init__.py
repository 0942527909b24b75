"""The proxy side: the LiteLLM callback (model_route_callback), its routing and bookkeeping,
the pure core and the stores. Never imports textual."""
