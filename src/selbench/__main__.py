from selbench.cli.main import main

main()
