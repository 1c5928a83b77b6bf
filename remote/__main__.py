from remote.cli.app import main

main()
