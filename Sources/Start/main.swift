import StartCommand

HPVMStart.main()
