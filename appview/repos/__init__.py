"""Reading and writing AT Protocol repositories: DAG-CBOR and CIDs, CAR files, the Merkle
Search Tree. The devnet PDS writes repos with them; full_sync reads them back."""
