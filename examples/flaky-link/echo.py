"""A UDP echo server: answers every datagram with the same bytes."""
import socket
import sys

server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = server.recvfrom(2048)
    server.sendto(data, peer)
