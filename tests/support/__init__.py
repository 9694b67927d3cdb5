"""What tests share: factories of audio files and shard sets, the tiny training runs and launches, network-namespace
hosts, a range server, and the repository's paths (`paths`). Test modules import from here, never from each other."""
