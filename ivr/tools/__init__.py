"""Admin tools: simulate, test-flows, graph, check, schema, prompts (one command per module)."""
