import StopCommand

HPVMStop.main()
