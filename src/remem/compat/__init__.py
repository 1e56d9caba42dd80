"""Other memory libraries' APIs over remem, so code written for them switches by an import:
`remem.compat.mem0.Memory` for mem0's OSS `Memory`."""
