from app.standin.server import main

main()
