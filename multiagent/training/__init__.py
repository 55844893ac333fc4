"""Pipeline phases: prepare data -> (later) pretrain -> symbols -> master -> joint."""
