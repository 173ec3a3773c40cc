import ConsoleCommand

HPVMConsole.main()
