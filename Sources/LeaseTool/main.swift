import LeaseCommand

HPVMLease.main()
