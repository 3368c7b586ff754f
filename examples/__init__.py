"""Three small trading bots built on stockquest_client; run one with `python -m examples.<name> --guest`."""
