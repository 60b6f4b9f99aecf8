#!/usr/bin/env python3
"""Writes core/data/common-passwords.txt: passwords people pick most often, lowercase, one a line.

The list is generated here from public knowledge of what tops every published breach analysis
(the "most common passwords" lists: 123456, password, qwerty, iloveyou, football, dragon, …),
the words those lists are made of, and the patterns people wrap around them (years, counters,
"!" and "123" suffixes, keyboard walks, repeated characters). No breach corpus is downloaded.
Quiesce compares new passwords against it case-insensitively (ASVS v5 6.2.4). Run it again
after changing the seeds; the output is deterministic.
"""
import itertools
import os

# The passwords that head every published top-N list, roughly in order.
TOP = """123456 password 123456789 12345678 12345 qwerty 1234567 111111 1234567890 123123 abc123
1234 password1 iloveyou 1q2w3e4r 000000 qwerty123 zaq12wsx dragon sunshine princess letmein 654321
monkey 27653 1qaz2wsx 123321 qwertyuiop superman asdfghjkl football baseball welcome admin
passw0rd master hello freedom whatever qazwsx trustno1 starwars 121212 shadow michael jennifer
computer 666666 654321 7777777 987654321 123qwe 11111111 aa123456 donald charlie jordan23
password123 password12 password1234 welcome1 welcome123 admin123 administrator root toor
changeme changeit default guest login secret letmein123 iloveyou1 princess1 sunshine1 football1
baseball1 master123 hello123 1q2w3e 1q2w3e4r5t 1q2w3e4r5t6y zxcvbnm zxcvbnm123 asdfgh asdf1234
qwer1234 q1w2e3r4 q1w2e3r4t5 a1b2c3d4 abcd1234 abcdef abcdefg abcdefgh abcdefghij 123abc
1234qwer qwertyui 1234554321 0987654321 9876543210 1111111111 0000000000 1212121212 5555555555
michelle jessica ashley daniel andrew joshua matthew anthony hunter buster soccer harley ranger
batman thomas tigger robert access love pussy 696969 mustang killer george summer taylor
cheese hockey bailey yankees maggie amanda ginger chelsea hannah diamond pepper cookie
""".split()

# Words the lists are built from: names, things people love, places, brands, seasons.
WORDS = """password passwort motdepasse contraseña senha parola wachtwoord haslo salasana
qwerty asdf zxcv admin administrator root user guest test tester testing demo login welcome
secret private letmein changeme default master server database postgres mysql oracle sqlite
quiesce replication mirror backup maintenance service system manager operator viewer support
company office business corporate internet computer laptop desktop network security access
dragon monkey tiger lion eagle falcon shark wolf bear horse dolphin panther jaguar cobra phoenix
unicorn butterfly spider rabbit kitten puppy doggie kitty bunny
football baseball basketball soccer hockey tennis golf cricket rugby volleyball boxing
superman batman spiderman ironman hulk thor wolverine starwars startrek pokemon pikachu
naruto minecraft fortnite zelda mario sonic matrix gandalf frodo hogwarts harrypotter
sunshine rainbow princess angel heaven flower blossom butterfly sweetheart lovely beautiful
iloveyou loveyou lovelove babygirl babyboy sweetie honey sugar candy cookie chocolate
cheese pizza banana orange apple cherry strawberry peaches coffee whiskey beer
summer winter autumn spring january february march april june july august september october
november december monday friday sunday weekend holiday christmas halloween easter
freedom liberty justice victory destiny trinity genesis eternity infinity galaxy universe
shadow ghost killer hunter ranger soldier warrior ninja samurai viking pirate knight wizard
master legend champion winner player gamer hacker coder
michael jennifer jessica ashley daniel andrew joshua matthew anthony david james john robert
william richard joseph thomas charles christopher mark paul steven kevin brian george edward
jason jeffrey ryan jacob nicholas eric jonathan justin brandon benjamin samuel alexander
patrick tyler aaron adam nathan zachary kyle jordan austin ethan noah logan lucas mason
mary patricia linda barbara elizabeth susan margaret sarah karen nancy lisa betty sandra
donna carol michelle emily amanda melissa deborah stephanie rebecca laura sharon cynthia
kathleen amy angela anna brenda pamela nicole samantha katherine christine rachel hannah
emma olivia sophia isabella mia charlotte amelia harper evelyn abigail madison chloe
natalie victoria grace lily zoe alexandra maria andrea monica veronica diana jasmine
charlie buster bailey max bella lucy molly daisy rocky maggie sophie sadie chloe duke
oliver toby jack bear zeus lucky shadow ginger pepper oscar milo teddy simba nala
london paris berlin madrid rome tokyo moscow newyork chicago boston dallas houston texas
florida california canada america england germany france italy spain mexico brazil india
australia europe africa asia
mustang corvette ferrari porsche mercedes toyota honda nissan harley yamaha ducati
chelsea arsenal liverpool barcelona juventus realmadrid manchester united yankees lakers
cowboys steelers patriots packers raiders eagles giants
google facebook twitter instagram youtube microsoft windows apple iphone android samsung
linux ubuntu debian mac
jesus christ god lord faith blessed grace church heaven angel
money dollar rich million gold silver diamond platinum
music guitar piano rock metal jazz blues dance party
happy smile funny crazy cool awesome super great best good nice sweet
hello hello world letmein trustno1 whatever nothing something anything everything
""".split()

SUFFIXES = (
    [""]
    + [str(n) for n in range(10)]
    + ["00", "01", "07", "10", "11", "12", "13", "21", "22", "23", "69", "77", "88", "99", "007"]
    + ["123", "1234", "12345", "123456", "1234567", "12345678", "123456789", "321", "111", "000"]
    + [str(y) for y in range(1960, 2031)]
    + ["!", "!!", "1!", "12!", "123!", "@123", "#1", "?", ".", "123.", "@", "$", "*"]
)

WALKS = """qwertyuiop qwertyuiop1 asdfghjkl asdfghjkl1 zxcvbnm zxcvbnm1 qwertyuiop[] 1qaz2wsx3edc
1qaz2wsx3edc4rfv qazwsxedc qazwsxedcrfv zaq12wsx zaq1zaq1 zaq1xsw2 zaq1xsw2cde3 1q2w3e4r5t6y7u8i
1q2w3e4r5t6y 1q2w3e4r5t q1w2e3r4t5y6 qweasdzxc qweasdzxc123 asdfqwer zxcvasdf qwerasdf
poiuytrewq lkjhgfdsa mnbvcxz 0987654321 1234567890 12345678901 123456789012 1234567890q
!qaz2wsx !qaz@wsx 1qaz!qaz qwerty!@# !@#$%^&* !@#$%^&*() 1234qwerasdf 1234qwerasdfzxcv
abcdefghijk abcdefghijkl abcdefghijklmnop abc123abc123 abcabcabc 123abc123abc qwe123qwe123
asd123asd123 aaaaaaaaaa aaaaaaaaaaaa 1111111111 11111111111 111111111111 2222222222 9999999999
1231231231 1212121212 123123123123 12341234 1234512345 123456123456 0000000000 000000000000
11223344 1122334455 112233445566 1111122222 1qa2ws3ed 147258369 159753 1597534862 741852963
963852741 147852369 258456 789456123 7894561230 1234567899 0123456789 9876543210 987654321
""".split()

PHRASES = """iloveyou iloveyou2 iloveyoutoo iloveyouforever iloveyousomuch iloveme ilovemyself
ilovemymom ilovemydad ilovemywife ilovemyhusband ilovemykids ilovegod ilovejesus
letmein letmeinnow letmeinplease openthedoor opensesame trustno1 trustnoone nopassword
mypassword mypassword1 mysecret thisismypassword thisisapassword passwordpassword
password12345 password123456 password1234567 password!@# passwordpassword1 changeme123
changemenow changethispassword welcometo welcomehome welcomeback hellothere helloworld
helloworld123 goodmorning goodnight happybirthday happydays happylife lifeisgood
godisgood godisgreat jesuslovesme jesusislord blessedandhighlyfavored
whatever123 whatisthis idontknow iamthebest iamgod iamtheone youareit
administrator1 administrator123 superadmin superuser rootroot rootpassword adminadmin
admin12345 admin123456 administrador qwertyqwerty qwerty12345 qwerty123456 qwerty1234567
football123 baseball123 basketball123 soccer1234 princess123 sunshine123 dragon12345
monkey12345 shadow12345 master12345 superman123 batman12345 starwars123 pokemon123
""".split()

def main():
    seen = set()
    out = []

    def add(p):
        p = p.strip().lower()
        if p and p not in seen:
            seen.add(p)
            out.append(p)

    for p in TOP + WALKS + PHRASES:
        add(p)
    for w, s in itertools.product(WORDS, SUFFIXES):
        add(w + s)
    # Doubled words and the common "<word>123!" and leet forms of the top words.
    leet = str.maketrans({"a": "@", "o": "0", "e": "3", "i": "1", "s": "$"})
    for w in WORDS:
        add(w + w)
        add(w.translate(leet))
        add(w.translate(leet) + "1")
        add(w.translate(leet) + "123")
        add(w.translate(leet) + "!")
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "core", "data", "common-passwords.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print(f"{len(out)} passwords written to {os.path.normpath(path)}")

if __name__ == "__main__":
    main()
