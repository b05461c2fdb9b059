from nsgsolve.cli import main

main()
