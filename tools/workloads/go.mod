module schedscope/workloads

go 1.19
